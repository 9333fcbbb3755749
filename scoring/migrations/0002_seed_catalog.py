"""Seed a playable catalog: three difficulties and eight tasks."""

from django.db import migrations

DIFFICULTIES = [("Easy", 10, 1), ("Medium", 25, 2), ("Hard", 50, 3)]

TASKS = [
    ("warm-up-sums", "Warm-up sums", "Add a few one-digit numbers.", "Easy"),
    ("quick-subtraction", "Quick subtraction", "Subtract small numbers against the clock.", "Easy"),
    ("times-tables", "Times tables", "Multiply numbers up to 10.", "Easy"),
    ("mixed-operations", "Mixed operations", "Add, subtract and multiply two-digit numbers.", "Medium"),
    ("long-addition", "Long addition", "Add three-digit numbers.", "Medium"),
    ("division-drill", "Division drill", "Divide without a remainder.", "Medium"),
    ("mental-marathon", "Mental marathon", "A long run of mixed two-digit problems.", "Hard"),
    ("big-products", "Big products", "Multiply two-digit by two-digit numbers.", "Hard"),
]


def seed(apps, schema_editor):
    Difficulty = apps.get_model("scoring", "Difficulty")
    Task = apps.get_model("scoring", "Task")
    by_name = {}
    for name, points, ordering in DIFFICULTIES:
        by_name[name], _ = Difficulty.objects.get_or_create(name=name, defaults={"points": points, "ordering": ordering})
    for slug, title, description, difficulty in TASKS:
        Task.objects.get_or_create(
            slug=slug, defaults={"title": title, "description": description, "difficulty": by_name[difficulty]}
        )


def unseed(apps, schema_editor):
    apps.get_model("scoring", "Task").objects.filter(slug__in=[t[0] for t in TASKS]).delete()
    apps.get_model("scoring", "Difficulty").objects.filter(name__in=[d[0] for d in DIFFICULTIES], tasks=None).delete()


class Migration(migrations.Migration):
    dependencies = [("scoring", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
