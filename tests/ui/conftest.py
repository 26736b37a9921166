import sys
from pathlib import Path

# the ui is tested over runs made with the report tests' recipes
sys.path.insert(0, str(Path(__file__).parent.parent / "report"))
