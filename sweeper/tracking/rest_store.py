"""A tracking server's public REST API, read with urllib (no MLflow import), with the credentials
MLflow's client would send; for ``sweeper status`` (see ``run_store``)."""

from __future__ import annotations

import base64
import configparser
import http.client
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sweeper.tracking.run_records import ALL, Experiment, Keys, Run, chosen, make_run, unreadable

PAGE = 1000  # runs per REST page, as MlflowClient.search_runs asks
TIMEOUT_S = 60


def authorization_header() -> str | None:
    """The Authorization header MLflow's client sends: basic auth from MLFLOW_TRACKING_USERNAME and
    _PASSWORD (each else from ~/.mlflow/credentials), else bearer MLFLOW_TRACKING_TOKEN."""
    saved = configparser.ConfigParser()
    saved.read(Path("~/.mlflow/credentials").expanduser())
    section = saved["mlflow"] if saved.has_section("mlflow") else {}
    user = os.environ.get("MLFLOW_TRACKING_USERNAME") or section.get("mlflow_tracking_username")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD") or section.get("mlflow_tracking_password")
    if user and password:
        return "Basic " + base64.standard_b64encode(f"{user}:{password}".encode()).decode()
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    return f"Bearer {token}" if token else None


class RestStore:
    """A tracking server's REST API (``/api/2.0/mlflow/...``): the calls MlflowClient makes."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._base = uri.rstrip("/") + "/api/2.0/mlflow/"
        self._headers = {"Content-Type": "application/json"}
        if authorization := authorization_header():  # kept out of every message and repr
            self._headers["Authorization"] = authorization

    def _call(
        self, endpoint: str, body: dict[str, Any] | None = None, missing_ok: bool = False
    ) -> dict[str, Any] | None:
        request = urllib.request.Request(  # noqa: S310 - http(s) only: the store is made for http(s) URIs
            self._base + endpoint,
            headers=self._headers,
            data=None if body is None else json.dumps(body).encode(),
            method="GET" if body is None else "POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 - http(s) only
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            if missing_ok and error.code == 404:  # RESOURCE_DOES_NOT_EXIST
                return None
            raise unreadable(self.uri, error) from error
        except (OSError, ValueError, http.client.HTTPException) as error:  # refused, timed out, not JSON
            raise unreadable(self.uri, error) from error

    def _pages(self, endpoint: str, body: dict[str, Any], field: str) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            page = self._call(endpoint, {**body, **({"page_token": token} if token else {})}) or {}
            yield from page.get(field, [])
            if not (token := page.get("next_page_token")):
                return

    def experiments(self) -> list[Experiment]:
        found = self._pages("experiments/search", {"max_results": PAGE, "view_type": "ACTIVE_ONLY"}, "experiments")
        return [Experiment(str(e["experiment_id"]), e["name"]) for e in found]

    def experiment_named(self, name: str) -> Experiment | None:
        query = urllib.parse.urlencode({"experiment_name": name})
        found = self._call(f"experiments/get-by-name?{query}", missing_ok=True)
        return (
            None
            if found is None
            else Experiment(str(found["experiment"]["experiment_id"]), found["experiment"]["name"])
        )

    def runs_tagged(self, experiment_ids: list[str], key: str, value: str, keys: Keys = ALL) -> list[Run]:
        if not experiment_ids:
            return []
        # key and value are sweeper's own tag names and run ids: nothing to escape in the filter. The
        # REST API returns every tag, metric and param of a run: ``keys`` only trims what is kept.
        body = {
            "experiment_ids": experiment_ids,
            "filter": f"tags.`{key}` = '{value}'",
            "max_results": PAGE,
            "run_view_type": "ACTIVE_ONLY",
            "order_by": ["attributes.start_time DESC"],
        }
        runs = []
        for run in self._pages("runs/search", body, "runs"):
            info, data = run["info"], run.get("data", {})
            tags = {item["key"]: item.get("value", "") for item in data.get("tags", [])}
            params = {item["key"]: item.get("value", "") for item in data.get("params", [])}
            # JSON has no NaN: the server writes NaN and infinities as strings, which float() reads.
            metrics = {item["key"]: float(item["value"]) for item in data.get("metrics", [])}
            runs.append(
                make_run(
                    info["run_id"],
                    info.get("run_name"),
                    info["experiment_id"],
                    info["status"],
                    info.get("start_time"),
                    info.get("end_time"),
                    chosen(tags, keys.tags),
                    chosen(metrics, keys.metrics),
                    chosen(params, keys.params),
                )
            )
        return runs
