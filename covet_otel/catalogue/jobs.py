"""Backup/migration group: signals that only the application's jobs know."""

from ._model import JOB_SECONDS_BUCKETS, Label, MetricDef

BACKUP = Label("backup", description="the backup's fixed name: backup(name), covet-otel job backup --name")
OUTCOME = Label("outcome", ("success", "failure"))
MIGRATOR = Label("migrator", description="alembic, or track_migration(name) / job migrate --migrator")

METRICS = (
    MetricDef(
        "covet_backup_last_success_timestamp",
        "gauge",
        "",
        "backup_migration",
        "sdk",
        "Unix time of the last successful backup.",
        (BACKUP,),
    ),
    MetricDef(
        "covet_backup_size_bytes",
        "gauge",
        "By",
        "backup_migration",
        "sdk",
        "Size of the last successful backup.",
        (BACKUP,),
    ),
    MetricDef(
        "covet_backup_duration_seconds",
        "histogram",
        "s",
        "backup_migration",
        "sdk",
        "Duration of backup runs.",
        (BACKUP, OUTCOME),
        buckets=JOB_SECONDS_BUCKETS,
    ),
    MetricDef(
        "covet_backup_runs_total",
        "counter",
        "{run}",
        "backup_migration",
        "sdk",
        "Backup runs by outcome.",
        (BACKUP, OUTCOME),
    ),
    MetricDef(
        "covet_migration_pending",
        "gauge",
        "{migration}",
        "backup_migration",
        "sdk",
        "Migrations between the database's revision and the scripts' head.",
        (MIGRATOR,),
        seed_name="covet_migration_pending_total",
        notes="Renamed: promtool rejects _total on a gauge.",
    ),
    MetricDef(
        "covet_migration_duration_seconds",
        "histogram",
        "s",
        "backup_migration",
        "sdk",
        "Duration of migration runs.",
        (MIGRATOR, OUTCOME),
        buckets=JOB_SECONDS_BUCKETS,
    ),
    MetricDef(
        "covet_migration_in_progress",
        "gauge",
        "{migration}",
        "backup_migration",
        "sdk",
        "1 while a migration runs; with covet_migration_started_timestamp it shows a stuck one.",
        (MIGRATOR,),
    ),
    MetricDef(
        "covet_migration_started_timestamp",
        "gauge",
        "",
        "backup_migration",
        "sdk",
        "Unix time the running (or last) migration started.",
        (MIGRATOR,),
    ),
    MetricDef(
        "covet_migration_runs_total",
        "counter",
        "{run}",
        "backup_migration",
        "sdk",
        "Migration runs by outcome.",
        (MIGRATOR, OUTCOME),
    ),
    MetricDef(
        "covet_migration_last_success_timestamp",
        "gauge",
        "",
        "backup_migration",
        "sdk",
        "Unix time of the last successful migration run.",
        (MIGRATOR,),
    ),
)
