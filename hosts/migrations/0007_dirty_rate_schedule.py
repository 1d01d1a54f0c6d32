"""Measure running guests' dirty rates every minute (hosts.services.dirty_rates)."""

from django.db import migrations

NAME = "dirty-rates"


def create(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name=NAME,
        defaults={"func": "hosts.tasks.measure_dirty_rates", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


def remove(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("hosts", "0006_guest_dirty_rate")]
    operations = [migrations.RunPython(create, remove)]
