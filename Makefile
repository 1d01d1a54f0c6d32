# The two commands of the README. Both install what they need first (apt, venv, pip).
.PHONY: run test install lab-up lab-down bench

install:
	bash scripts/install.sh

run: install
	bash scripts/run.sh

test: install
	bash scripts/test.sh

lab-up: install
	.venv/bin/python manage.py lab up

lab-down:
	.venv/bin/python manage.py lab down

bench: install
	.venv/bin/python bench/topology.py
