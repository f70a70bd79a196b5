"""The pure core: the congregation folder as M³ 22–24 laid it out, dates, meetings, names, settings
and the planner. No I/O: nothing here touches the disk, the network, threads or the clock
(``tests/test_architecture.py`` holds the allow-list of what it may import)."""
