import sys

from exposedapp.cli import main

sys.exit(main())
