# -*- test-case-name: tests.test_tac -*-
# Every role in one process:  twistd -ny postal.tac
# Reads $POSTAL_CONFIG_FILE_PATH, else ./postal.yml.  Logs: JSON lines in
# <logging.directory>/allinone.log, plus readable text on stdout.
import os
import sys

from twisted.application.service import Application
from twisted.logger import ILogObserver

from postal.config import config_path_from
from postal.logs import observer_for
from postal.tap.allinone import ROLE_NAME, makeService
from postal.tap.common import load_config_from_path

config = load_config_from_path(config_path_from(None, os.environ))
application = Application("postal")
application.setComponent(ILogObserver, observer_for(ROLE_NAME, config, stdout=sys.stdout))
makeService(config).setServiceParent(application)
