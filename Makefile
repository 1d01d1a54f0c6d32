# The two commands of the README (`make run`, `make test`) install what they need first (apt, venv, pip).
# The others assume the install is done; `lint` and `test-unit` need neither root nor the lab.
.PHONY: run test install lint lint-ruff lint-format lint-types lint-check lint-migrations test-unit lab-up lab-down bench

install:
	bash scripts/install.sh

run: install
	bash scripts/run.sh

test: install
	bash scripts/test.sh

# Static checks, the same as the pre-commit hooks (.pre-commit-config.yaml). `make -k lint` runs every
# one even when an earlier one fails (scripts/test.sh does).
lint: lint-ruff lint-format lint-types lint-check lint-migrations

lint-ruff:
	.venv/bin/ruff check .

lint-format:
	.venv/bin/ruff format --check .

# mypy with django-stubs on the typed core ([tool.mypy] in pyproject.toml names the paths).
lint-types:
	.venv/bin/python -m mypy

lint-check:
	.venv/bin/python manage.py check

lint-migrations:
	.venv/bin/python manage.py makemigrations --check --dry-run

# The seconds-fast tier: no database server, no libvirt, no root, no lab (embedded profile, a throw-away
# data directory). CONTRIBUTING.md lists the other tiers.
test-unit:
	@d=$$(mktemp -d /tmp/kvmcluster-unit.XXXXXX); \
	env -u DATABASE_URL -u REDIS_URL KVMCLUSTER_DATA_DIR="$$d" .venv/bin/python -m pytest -q -p no:cacheprovider tests/unit; \
	rc=$$?; rm -rf "$$d"; exit $$rc

lab-up: install
	KVMCLUSTER_LAB=1 .venv/bin/python manage.py lab up

lab-down:
	KVMCLUSTER_LAB=1 .venv/bin/python manage.py lab down

bench: install
	.venv/bin/python bench/topology.py
