import sys

from posedet.cli import main

sys.exit(main())
