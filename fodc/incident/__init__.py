"""First-occurrence incidents: triggers that notice trouble, and bundles that freeze the evidence."""
