pytest_plugins = ["toolkit.testing"]
