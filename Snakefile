# NeuralOGCM reproduction: one DAG from the sources to the paper's tables and figures.
#   snakemake --cores all                                                   (embedded demo)
#   snakemake --cores all --profile slurm --configfile config/paper.yaml    (the paper)
# See docs/DESIGN.md for the layout and the file contracts.

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

from neuralogcm.config import ConfigError, load as load_config

min_version("8.20")


# The run's config is config/config.yaml (the demo) only when no --configfile is given; given
# ones replace it wholly (several are merged in the order given), so a run config is complete on
# its own. --config KEY=VALUE overrides either.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


try:
    CFG = load_config(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None


include: "workflow/rules/common.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


onstart:
    write_config_files()


rule all:
    input:
        final_targets(),
    default_target: True
