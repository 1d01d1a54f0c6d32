"""The permission accounts.manage_notifications (admin), and the role groups re-synced to accounts.roles.ROLES."""

from django.db import migrations


def sync(apps, schema_editor):
    from accounts.roles import sync_role_groups

    sync_role_groups(apps, using=schema_editor.connection.alias)


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0007_api_token_use'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='auditevent',
            options={'default_permissions': (), 'ordering': ['-id'], 'permissions': [('view_cluster', 'Can view the cluster'), ('view_audit', 'Can view the audit trail'), ('refresh_inventory', 'Can refresh the inventory'), ('power_guests', 'Can start and stop guests'), ('run_migrations', 'Can run guest migrations'), ('manage_hosts', 'Can manage hypervisors and storage'), ('manage_users', 'Can manage users and roles'), ('manage_notifications', 'Can manage notification targets')]},
        ),
        migrations.RunPython(sync, migrations.RunPython.noop),
    ]
