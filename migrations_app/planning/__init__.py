"""Pure decisions about guest migrations: plain data in, a choice out; no database, no libvirt."""
