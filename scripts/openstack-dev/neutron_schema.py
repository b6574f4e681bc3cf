"""Create neutron's tables from its models (as neutron's unit tests do):
faster than the alembic chain, which also cannot run on SQLite. The caller
then stamps alembic at heads. Usage: neutron_schema.py SQLALCHEMY_URL"""
import sys

import sqlalchemy
from neutron.db.migration.models import head

head.get_metadata().create_all(sqlalchemy.create_engine(sys.argv[1]))
