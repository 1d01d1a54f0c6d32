from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("migrations_app", "0007_balancer"),
    ]

    operations = [
        migrations.AddField(
            model_name="migrationjob",
            name="timings",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
