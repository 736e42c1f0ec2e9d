"""The settings and the files they come from: config.yaml, the app's files, the options."""
