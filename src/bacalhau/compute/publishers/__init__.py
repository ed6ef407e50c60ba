"""Publishers, by the type name used in job specs."""
