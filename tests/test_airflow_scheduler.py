"""Airflow's real scheduler, on its own, starts the night of a day that has ended, and the night's delivery sensor
waits without holding a worker slot: with no delivery at all, the night stays at check_deliveries and nothing is
ingested."""
from __future__ import annotations

import datetime as dt

from tests.airflow_scheduler import dag_runs, running_scheduler, task_states, wait_for

DAY = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
NIGHT = {
    # the scheduler owes exactly one night, DAY's
    "SESAME_SCHEDULE_START": f"{DAY:%Y-%m-%d}", "SESAME_SCHEDULE_END": f"{DAY:%Y-%m-%d}",
    "SESAME_SCHEDULE_CATCHUP": "1",
    # a deadline years away, so that the night keeps waiting for its deliveries, looking every 5 s
    "SESAME_DELIVERY_DEADLINE_HOURS": "100000", "SESAME_DELIVERY_POKE_SECONDS": "5",
}


def test_the_scheduler_starts_the_night_and_it_waits_for_its_deliveries(home):
    with running_scheduler(home, env={**NIGHT, "SESAME_HOME": str(home)}):
        runs = wait_for(lambda: dag_runs(home, "sesame_nightly"), 120, "the scheduler to create the night's run")
        assert [(run["run_type"], run["logical_date"], run["data_interval_start"], run["data_interval_end"])
                for run in runs] == [("scheduled", DAY, DAY, DAY + dt.timedelta(days=1))]
        run_id = runs[0]["run_id"]

        def sensor_between_looks():
            # between two looks the sensor gives its worker slot back (reschedule mode) rather than sleeping in it
            states = task_states(home, "sesame_nightly", run_id)
            return states if states.get("check_deliveries") == "up_for_reschedule" else None

        states = wait_for(sensor_between_looks, 120, "check_deliveries to wait for the deliveries")
        assert states["ingest"] is None
        assert len(dag_runs(home, "sesame_nightly")) == 1
