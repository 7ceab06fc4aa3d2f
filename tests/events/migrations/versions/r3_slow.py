"""a slow data migration (its duration comes from COVET_TEST_SLOW_SECONDS, default 0)"""

import os

from alembic import op

revision = "r3"
down_revision = "r2"


def upgrade() -> None:
    seconds = float(os.environ.get("COVET_TEST_SLOW_SECONDS", "0"))
    op.execute(f"SELECT pg_sleep({seconds})")
    op.execute("CREATE INDEX items_name ON items (name)")


def downgrade() -> None:
    op.execute("DROP INDEX items_name")
