import functools

from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Tenant dashboard"

    def ready(self) -> None:
        import redis.utils

        # redis-py reads its own version from the package metadata (a scan of sys.path,
        # ~0.8 ms) for every connection it opens; a join storm opens hundreds (the channel
        # layer's pool grows with the sockets joining at once). The version never changes
        # while the process runs: read it once.
        if not hasattr(redis.utils.get_lib_version, "cache_info"):
            redis.utils.get_lib_version = functools.cache(redis.utils.get_lib_version)
