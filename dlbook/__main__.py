from dlbook.engine.cli import main

raise SystemExit(main())
