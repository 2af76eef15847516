"""Tests of the dev-stack tool that need no server (devstack/)."""
