"""The engine: one congregation's context built from its configuration, one sync, the executor that
carries out a plan on the media folder."""
