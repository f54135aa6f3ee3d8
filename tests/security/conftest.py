"""The app synthesized once per session for each kind of model record."""

from pathlib import Path

import pytest

from tests.robustness.support import local_record_app, s3_record_app, stack_templates


@pytest.fixture(scope="session")
def apps(tmp_path_factory):
    """A SageMaker-trained model (s3:// artifact) and a laptop-trained one (local asset)."""
    root = Path(tmp_path_factory.getbasetemp()) / "apps"
    return {"s3-record": s3_record_app(root), "local-record": local_record_app(root)}


@pytest.fixture(scope="session")
def templates(apps):
    """Every template of both apps: ``{(app, stack): template}``, whatever stacks exist."""
    return {
        (app_name, stack): template
        for app_name, app in apps.items()
        for stack, template in stack_templates(app.outdir).items()
    }
