"""disallow-plaintext-secrets, including how pulumi-policy 1.21.0 presents secret values."""

from __future__ import annotations

import copy

import pytest
from policy_helpers import engine_props, secret_envelope

from policy.rules import disallow_plaintext_secrets
from pulumi_policy import Secret
from pulumi_policy.proxy import unknown_checking_proxy

POLICY = disallow_plaintext_secrets.POLICY
CONTAINER = "docker:index/container:Container"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"

GOOD = [
    ("docker_api", CONTAINER, "api"),
    ("deployment", DEPLOYMENT, "web"),
    ("statefulset", "kubernetes:apps/v1:StatefulSet", "postgres-main"),
    ("cronjob", "kubernetes:batch/v1:CronJob", "postgres-main-backup"),
    ("configmap", CONFIGMAP, "api-config"),
]


def _web(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def _marked(raw: dict):
    """Props holding pulumi_policy.Secret markers, which the engine path (Analyze) never produces today."""
    return unknown_checking_proxy(copy.deepcopy(raw))


@pytest.mark.parametrize("fixture,resource_type,name", GOOD)
def test_disallow_plaintext_secrets_passes_known_good_fixtures(request, check, fixture, resource_type, name):
    assert check(POLICY, resource_type, name, request.getfixturevalue(fixture)) == []


def test_disallow_plaintext_secrets_rejects_docker_password_env(check, docker_api):
    docker_api["envs"].append("DB_PASSWORD=hunter2")
    assert check(POLICY, CONTAINER, "api", docker_api) == ["service 'api' sets 'DB_PASSWORD' in plain text in envs"]


def test_disallow_plaintext_secrets_rejects_docker_url_with_credentials(check, docker_api):
    docker_api["envs"].append("DATABASE_URL=postgres://app:hunter2@postgres-main:5432/app")
    assert check(POLICY, CONTAINER, "api", docker_api) == ["service 'api' sets 'DATABASE_URL' in plain text in envs"]


def test_disallow_plaintext_secrets_rejects_kubernetes_env_token_value(check, deployment):
    _web(deployment)["env"].append({"name": "GITHUB_TOKEN", "value": "ghp_0123456789"})
    assert check(POLICY, DEPLOYMENT, "web", deployment) == [
        "service 'web' container 'web' sets env 'GITHUB_TOKEN' in plain text"
    ]


def test_disallow_plaintext_secrets_rejects_init_container_api_key(check, deployment):
    deployment["spec"]["template"]["spec"]["initContainers"][0]["env"] = [{"name": "stripe-api-key", "value": "sk_live"}]
    assert check(POLICY, DEPLOYMENT, "web", deployment) == [
        "service 'web' init container 'migrate' sets env 'stripe-api-key' in plain text"
    ]


def test_disallow_plaintext_secrets_rejects_configmap_password_key(check, configmap):
    configmap["data"]["smtp.password"] = "hunter2"
    assert check(POLICY, CONFIGMAP, "api-config", configmap) == [
        "service 'api' ConfigMap holds 'smtp.password' in plain text"
    ]


def test_disallow_plaintext_secrets_rejects_configmap_dsn_with_credentials(check, configmap):
    configmap["data"]["SENTRY_DSN"] = "https://key:secret@sentry.example.com/4"
    assert check(POLICY, CONFIGMAP, "api-config", configmap) == ["service 'api' ConfigMap holds 'SENTRY_DSN' in plain text"]


def test_disallow_plaintext_secrets_accepts_empty_values_and_secret_file_paths(check, docker_api):
    docker_api["envs"] += ["API_TOKEN=", "REDIS_PASSWORD_FILE=/run/secrets/redis"]
    assert check(POLICY, CONTAINER, "api", docker_api) == []


def test_disallow_plaintext_secrets_accepts_secret_wrapped_docker_env_items(check, docker_api):
    docker_api["envs"].append(Secret("DB_PASSWORD=hunter2"))
    assert check(POLICY, CONTAINER, "api", None, props=_marked(docker_api)) == []


def test_disallow_plaintext_secrets_accepts_secret_wrapped_docker_env_list(check, docker_api):
    docker_api["envs"] = Secret(docker_api["envs"] + ["DB_PASSWORD=hunter2"])
    assert check(POLICY, CONTAINER, "api", None, props=_marked(docker_api)) == []


def test_disallow_plaintext_secrets_accepts_secret_wrapped_kubernetes_env(check, deployment):
    _web(deployment)["env"].append({"name": "API_TOKEN", "value": Secret("t0ken")})
    _web(deployment)["env"].append(Secret({"name": "OTHER_TOKEN", "value": "t0ken"}))
    deployment["spec"]["template"]["spec"]["initContainers"][0]["env"] = Secret([{"name": "API_TOKEN", "value": "x"}])
    assert check(POLICY, DEPLOYMENT, "web", None, props=_marked(deployment)) == []


def test_disallow_plaintext_secrets_accepts_secret_wrapped_configmap_data(check, configmap):
    configmap["data"]["DB_PASSWORD"] = Secret("hunter2")
    assert check(POLICY, CONFIGMAP, "api-config", None, props=_marked(configmap)) == []
    configmap["data"] = Secret({"DB_PASSWORD": "hunter2"})
    assert check(POLICY, CONFIGMAP, "api-config", None, props=_marked(configmap)) == []


def test_engine_path_unwraps_secret_envelopes_without_a_marker():
    # pulumi-policy 1.21.0 Analyze: deserialize_properties(..., proxy_secrets=False). If this starts
    # failing, the SDK now passes Secret markers and Docker envs from secret Outputs will pass.
    props = engine_props({"envs": [secret_envelope("DB_PASSWORD=hunter2")], "labels": secret_envelope([])})
    assert list(props["envs"]) == ["DB_PASSWORD=hunter2"]
    assert list(props["labels"]) == []


def test_disallow_plaintext_secrets_rejects_docker_env_from_secret_output_as_the_engine_sends_it(check, docker_api):
    docker_api["envs"].append(secret_envelope("DB_PASSWORD=hunter2"))
    assert check(POLICY, CONTAINER, "api", docker_api) == ["service 'api' sets 'DB_PASSWORD' in plain text in envs"]


def test_disallow_plaintext_secrets_rejects_kubernetes_secret_env_value_as_the_engine_sends_it(check, deployment):
    # A literal env value sits in the pod spec in plain text in the cluster whatever Pulumi encrypts.
    _web(deployment)["env"].append({"name": "API_TOKEN", "value": secret_envelope("t0ken")})
    assert check(POLICY, DEPLOYMENT, "web", deployment) == ["service 'web' container 'web' sets env 'API_TOKEN' in plain text"]
