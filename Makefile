# The two commands of the README. Both install what they need first (apt, venv, pip).
.PHONY: run test install lab-up lab-down bench

install:
	bash scripts/install.sh

run: install
	bash scripts/run.sh

test: install
	bash scripts/test.sh

lab-up: install
	KVMCLUSTER_LAB=1 .venv/bin/python manage.py lab up

lab-down:
	KVMCLUSTER_LAB=1 .venv/bin/python manage.py lab down

bench: install
	.venv/bin/python bench/topology.py
