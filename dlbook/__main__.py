from dlbook.cli import main

raise SystemExit(main())
