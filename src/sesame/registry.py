"""Model registry: versioned segmented scorecards with their model cards, and which one is champion.

Layout under $SESAME_HOME/models:
    registry.json                 {"champion": version, "events": [...], "versions": {...}}
    <version>/model.json          the fitted SegmentedScorecard: one Scorecard per segment (plain JSON, every
                                  scaling parameter included)
    <version>/card.json, card.html
Every write goes to a temporary file first, is fsynced and renamed into place (sesame.durable), so a reader never
sees half a file and a crash never leaves one.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from sesame.durable import write_atomic


class NoChampion(RuntimeError):
    pass


@dataclass(frozen=True)
class ModelEntry:
    version: str
    path: Path

    @property
    def model_json(self) -> str:
        return (self.path / "model.json").read_text(encoding="utf-8")

    @property
    def card(self) -> dict:
        return json.loads((self.path / "card.json").read_text(encoding="utf-8"))

    @property
    def inputs(self) -> list[str]:
        return list(self.card["features"])

    def load(self):
        from sesame.segments import SegmentedScorecard

        return SegmentedScorecard.from_json(self.model_json)


class Registry:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.index_path = self.root / "registry.json"

    def _index(self) -> dict:
        if not self.index_path.exists():
            return {"champion": None, "versions": {}, "events": []}
        return json.loads(self.index_path.read_text(encoding="utf-8"))

    def _save(self, index: dict) -> None:
        write_atomic(self.index_path, json.dumps(index, indent=1, sort_keys=True))

    def register(self, version: str, model_json: str, card: dict, card_html: str) -> ModelEntry:
        """Register a version. The same model trained again (same version id, same model.json: the same data and
        code) is re-evaluated, not refused: its card and gates are replaced and the event log keeps the gates it had;
        a different model under a registered version id is refused."""
        index = self._index()
        folder = self.root / version
        earlier = index["versions"].get(version)
        if earlier is not None and (folder / "model.json").read_text(encoding="utf-8") != model_json:
            raise ValueError(f"model version {version} is already registered with another model")
        write_atomic(folder / "model.json", model_json)
        write_atomic(folder / "card.json", json.dumps(card, indent=1, sort_keys=True, default=str))
        write_atomic(folder / "card.html", card_html)
        if earlier is None:
            index["versions"][version] = {"registered_at": _now(), "gates": card.get("gates", {})}
            index["events"].append({"at": _now(), "event": "registered", "version": version})
        else:
            index["events"].append(
                {"at": _now(), "event": "re_evaluated", "version": version, "previous_gates": earlier.get("gates", {})}
            )
            earlier.update(gates=card.get("gates", {}), re_evaluated_at=_now())
        self._save(index)
        return ModelEntry(version, folder)

    def promote(self, version: str, reason: str = "") -> None:
        index = self._index()
        if version not in index["versions"]:
            raise KeyError(f"unknown model version {version}; see `sesame models list`")
        index["events"].append(
            {"at": _now(), "event": "promoted", "version": version, "previous": index["champion"], "reason": reason}
        )
        index["champion"] = version
        self._save(index)

    def rollback(self) -> str:
        """Make the champion before the current one champion again; returns that version."""
        index = self._index()
        promotions = [e for e in index["events"] if e["event"] in ("promoted", "rolled_back")]
        if not promotions or not promotions[-1].get("previous"):
            raise NoChampion("no earlier champion to roll back to")
        previous = promotions[-1]["previous"]
        before_previous = next((e.get("previous") for e in reversed(promotions) if e["version"] == previous), None)
        index["events"].append(
            {
                "at": _now(),
                "event": "rolled_back",
                "version": previous,
                "previous": before_previous,
                "from": index["champion"],
            }
        )
        index["champion"] = previous
        self._save(index)
        return previous

    def champion(self) -> ModelEntry:
        version = self._index()["champion"]
        if not version:
            raise NoChampion(f"no champion model in {self.root}: run `sesame train` first")
        return ModelEntry(version, self.root / version)

    def has_champion(self) -> bool:
        return bool(self._index()["champion"])

    def get(self, version: str) -> ModelEntry:
        if version not in self._index()["versions"]:
            raise KeyError(f"unknown model version {version}")
        return ModelEntry(version, self.root / version)

    def list(self) -> list[dict]:
        index = self._index()
        rows = [{"version": v, "champion": v == index["champion"], **meta} for v, meta in index["versions"].items()]
        return sorted(rows, key=lambda r: (r["registered_at"], r["version"]))  # oldest first


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
