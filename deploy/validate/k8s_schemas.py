"""Kubernetes manifests against schemas: built-in kinds with kubernetes-validate (strict, so an
unknown field is an error as with `kubectl apply`'s default server-side field validation),
KEDA ScaledObjects against the openAPIV3Schema of KEDA's own CRD."""

from __future__ import annotations

import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

# The oldest minor the manifests target and the newest kubernetes-validate knows: a field
# too new for the first, or an API removed by the second, fails.
KUBERNETES_VERSIONS = ("1.33.0", "1.37.0")
CUSTOM_GROUPS = ("keda.sh/",)


def render(kustomize: Path, kustomization: Path) -> list[dict]:
    done = subprocess.run([str(kustomize), "build", str(kustomization)], capture_output=True, text=True)
    if done.returncode != 0:
        raise ValueError(f"kustomize build {kustomization} failed: {done.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def name_of(doc: dict) -> str:
    return f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"


def check_builtin_kinds(docs: list[dict]) -> list[str]:
    problems = []
    for doc in docs:
        if str(doc.get("apiVersion", "")).startswith(CUSTOM_GROUPS):
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                where = ".".join(str(p) for p in error.path) or "(top)"
                problems.append(f"{name_of(doc)}: Kubernetes {version}: {where}: {error.message}")
            except kubernetes_validate.SchemaNotFoundError as error:
                problems.append(f"{name_of(doc)}: {error.message}")
    return problems


def scaled_object_schema(crd_yaml: bytes) -> dict:
    """The served version's schema from KEDA's CRD, made strict like the API server's field
    validation: every object that lists its properties accepts no others."""
    crd = yaml.safe_load(crd_yaml)
    (version,) = [v for v in crd["spec"]["versions"] if v.get("served")]
    return _strict(version["schema"]["openAPIV3Schema"])


def _strict(schema: dict) -> dict:
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


def check_scaled_objects(docs: list[dict], schema: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(schema)
    problems = []
    for doc in docs:
        if doc.get("kind") != "ScaledObject":
            continue
        for error in validator.iter_errors(doc):
            where = ".".join(str(p) for p in error.path) or "(top)"
            problems.append(f"{name_of(doc)}: KEDA CRD schema: {where}: {error.message}")
    return problems
