"""addons/deadlines.py: many deadlines, one loop timer; each fires once, on time; a dropped one never."""

import asyncio

from authgate.addons.deadlines import Deadlines


async def test_deadlines_fire_in_order_on_time_and_a_dropped_one_never():
    loop = asyncio.get_running_loop()
    fired = []
    d = Deadlines(lambda name: fired.append((name, loop.time())))
    start = loop.time()
    d.set("late", 0.15, "late")
    d.set("early", 0.05, "early")  # earlier than the armed one: the timer moves
    d.set("dropped", 0.02, "dropped")
    d.drop("dropped")
    assert "early" in d and "dropped" not in d and len(d) == 2
    assert abs(d.when("early") - (start + 0.05)) < 0.01
    await asyncio.sleep(0.3)
    assert [name for name, _ in fired] == ["early", "late"]
    for name, at in fired:
        assert {"early": 0.05, "late": 0.15}[name] - 0.001 <= at - start < {"early": 0.05, "late": 0.15}[name] + 0.1
    assert len(d) == 0 and d.when("late") is None


async def test_an_action_may_set_its_deadline_again_and_a_failing_one_spoils_no_other(caplog):
    fired = []
    d = None

    def expire(name):
        fired.append(name)
        if name == "again" and fired.count("again") == 1:
            d.set("again", 0.02, "again")  # nothing to cut yet: wait another round (Forward does)
        if name == "broken":
            raise RuntimeError("boom")

    d = Deadlines(expire)
    d.set("broken", 0.01, "broken")
    d.set("again", 0.01, "again")
    await asyncio.sleep(0.15)
    assert fired.count("again") == 2 and "broken" in fired and "boom" in caplog.text
    d.set("closed", 0.01, "closed")
    d.close()
    await asyncio.sleep(0.05)
    assert "closed" not in fired
