pytest_plugins = ["fastprod.localkafka.pytest_plugin"]
