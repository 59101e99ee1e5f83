# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""Task logs over HTTPS: a worker's log server with the host's certificate, and the api-server's reader of it."""
