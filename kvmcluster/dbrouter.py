"""Keep channels-lite's message table in its own SQLite file (embedded profile only).

Websocket traffic then never waits behind a migration's write lock on the main database.
"""

CHANNELS_APP = "channels_lite"


class ChannelsRouter:
    def db_for_read(self, model, **hints):
        return "channels" if model._meta.app_label == CHANNELS_APP else None

    db_for_write = db_for_read

    def allow_relation(self, obj1, obj2, **hints):
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label == CHANNELS_APP:
            return db == "channels"
        return db == "default"
