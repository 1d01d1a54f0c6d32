"""Every minute, enqueue the notification attempts that are due (django-q2 Schedule "notifications-retry";
the retry delays themselves are notifications.services.RETRY_DELAYS_SECONDS)."""

from django.db import migrations

NAME = "notifications-retry"


def create(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name=NAME,
        defaults={"func": "notifications.tasks.deliver_due", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


def remove(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]
    operations = [migrations.RunPython(create, remove)]
