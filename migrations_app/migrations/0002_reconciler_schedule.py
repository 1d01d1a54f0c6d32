"""Run the guest-migration reconciler every minute (django-q2 Schedule); it also runs at worker start
(migrations_app.apps). catch_up is off, so a long-stopped cluster runs it once, not once per minute missed."""

from django.db import migrations

NAME = "migrations-reconciler"


def create(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name=NAME,
        defaults={"func": "migrations_app.tasks.reconcile", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


def remove(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("migrations_app", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]
    operations = [migrations.RunPython(create, remove)]
