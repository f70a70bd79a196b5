from m3daemon.cli.main import main

raise SystemExit(main())
