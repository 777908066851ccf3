from oms_servicekit.migrations import run_env

run_env()
