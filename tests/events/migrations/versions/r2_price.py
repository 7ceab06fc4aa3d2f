"""add price"""

from alembic import op

revision = "r2"
down_revision = "r1"


def upgrade() -> None:
    op.execute("ALTER TABLE items ADD COLUMN price numeric")


def downgrade() -> None:
    op.execute("ALTER TABLE items DROP COLUMN price")
