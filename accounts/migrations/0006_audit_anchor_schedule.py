"""Anchor the audit head outside the database every 10 minutes (django-q2 Schedule "audit-anchor");
audit_record also anchors every AUDIT_ANCHOR_EVERY rows. The task writes only when the head moved."""

from django.db import migrations

NAME = "audit-anchor"


def create(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name=NAME,
        defaults={"func": "accounts.tasks.anchor_audit_head", "schedule_type": "I", "minutes": 10, "repeats": -1},
    )


def remove(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_audit_keyed_chain"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]
    operations = [migrations.RunPython(create, remove)]
