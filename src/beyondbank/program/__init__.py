"""Program import: a bank's whole alliance programme from one YAML or JSON file, all or nothing."""
