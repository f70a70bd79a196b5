"""The congregation's configuration on this computer: the TOML file (loading, validation, the URL
rules), the password, the list of configurations, the provider presets."""
