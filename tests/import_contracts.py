"""A custom import-linter contract type (registered in pyproject's ``[tool.importlinter]``).

``foreign_private_modules``: import-linter's ``private_modules`` check, counting only imports made
by ``importers``. A library imports its own private modules across its packages as it likes
(Inspect does, hundreds of times); what this project must not do is reach into them itself.
lint-imports imports this module from the working directory (the repository root).
"""

from __future__ import annotations

import grimp
from importlinter.contracts.private_modules import PrivateModulesContract
from importlinter.domain import fields
from importlinter.domain.contract import ContractCheck


class ForeignPrivateModulesContract(PrivateModulesContract):
    """No module in ``importers`` imports a private module of ``packages_with_private_modules``
    (a name component starting with ``_``, outside that module's parent package), except the
    imports listed in ``ignore_imports``."""

    type_name = "foreign_private_modules"
    importers = fields.SetField(subfield=fields.ModuleExpressionField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        found = super().check(graph, verbose)
        roots = [str(expression.expression) for expression in self.importers]  # type: ignore
        ours = [
            link
            for link in found.metadata["illegal_imports"]
            if any(link["importer"] == r or link["importer"].startswith(f"{r}.") for r in roots)
        ]
        return ContractCheck(
            kept=not ours,
            warnings=found.warnings,
            ignored_import_count=found.ignored_import_count,
            metadata={"illegal_imports": ours},
        )
