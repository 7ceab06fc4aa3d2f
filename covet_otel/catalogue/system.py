"""System group: host and process figures read with psutil in the app process."""

from ._model import Label, MetricDef

METRICS = (
    MetricDef(
        "covet_system_cpu_usage_percent", "gauge", "%", "system", "sdk",
        "Host CPU utilisation over the last collection interval, 0-100 (all cores).",
    ),
    MetricDef(
        "covet_system_memory_usage_bytes", "gauge", "By", "system", "sdk",
        "Host memory in use (total minus available).",
    ),
    MetricDef(
        "covet_system_memory_total_bytes", "gauge", "By", "system", "sdk",
        "Host physical memory.",
    ),
    MetricDef(
        "covet_disk_usage_bytes", "gauge", "By", "system", "sdk",
        "Bytes used on the filesystem holding each COVET_DISK_PATHS path.",
        (Label("path", description="one of the configured COVET_DISK_PATHS"),),
    ),
    MetricDef(
        "covet_disk_total_bytes", "gauge", "By", "system", "sdk",
        "Size of the filesystem holding each COVET_DISK_PATHS path.",
        (Label("path", description="one of the configured COVET_DISK_PATHS"),),
    ),
    MetricDef(
        "covet_system_load_average", "gauge", "{thread}", "system", "sdk",
        "Host load average.",
        (Label("period", ("1m", "5m", "15m")),),
    ),
    MetricDef(
        "covet_process_cpu_seconds_total", "counter", "s", "system", "sdk",
        "CPU time consumed by this process.",
        (Label("mode", ("user", "system")),),
    ),
    MetricDef(
        "covet_process_memory_rss_bytes", "gauge", "By", "system", "sdk",
        "Resident set size of this process.",
    ),
    MetricDef(
        "covet_process_open_fds", "gauge", "{fd}", "system", "sdk",
        "Open file descriptors of this process.",
    ),
    MetricDef(
        "covet_process_max_fds", "gauge", "{fd}", "system", "sdk",
        "Soft limit on open file descriptors of this process.",
    ),
    MetricDef(
        "covet_process_threads", "gauge", "{thread}", "system", "sdk",
        "Threads of this process.",
    ),
    MetricDef(
        "covet_process_gc_collections_total", "counter", "{collection}", "system", "sdk",
        "Garbage collector runs of this process, by generation.",
        (Label("generation", ("0", "1", "2")),),
    ),
)
