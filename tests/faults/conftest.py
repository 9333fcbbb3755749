import os
import subprocess
import sys

import pytest

from gameapp.processes import free_port, wait_for_port, web_server_args
from tests.conftest import ROOT
from tests.faults.proxy import FaultProxy


@pytest.fixture
def fault_proxy(moto_server):
    proxy = FaultProxy(moto_server)
    yield proxy
    proxy.close()


@pytest.fixture
def web_server(consumer_env, tmp_path):
    """Start the web server (uvicorn: HTTP and websockets) with extra environment; returns its URL."""
    procs = []

    def start(**env) -> str:
        port = free_port()
        log = open(tmp_path / f"web-{port}.log", "wb")
        proc = subprocess.Popen(web_server_args(port=port), cwd=ROOT,
                                env={**consumer_env, "ALLOWED_HOSTS": "127.0.0.1", **env},
                                stdout=log, stderr=subprocess.STDOUT)
        procs.append(proc)
        wait_for_port(port, proc=proc)
        return f"http://127.0.0.1:{port}"

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=15)


def trusted_token(env: dict) -> str:
    """A token for a new trusted client (it may post a bare task), made in
    the database of child processes run with ``env``."""
    script = ("import uuid; from django.contrib.auth.models import Permission, User; from rest_framework.authtoken"
              ".models import Token; u = User.objects.create_user('p-' + uuid.uuid4().hex[:8]); "
              "u.user_permissions.add(Permission.objects.get(codename='submit_trusted')); "
              "print(Token.objects.create(user=u).key)")
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env,
                         check=True, capture_output=True, text=True).stdout
    return out.strip().splitlines()[-1]


@pytest.fixture
def api_token(consumer_env):
    """A token for a new trusted client in the child processes' database."""
    return trusted_token(consumer_env)


os.environ.setdefault("PYTHONUNBUFFERED", "1")
