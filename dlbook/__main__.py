from dlbook.engine import main

raise SystemExit(main())
