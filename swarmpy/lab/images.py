"""Images for the lab, built on this machine's engine from Debian's own binaries,
and copied from this machine's engine into every node's engine.

`swarmpy/busybox:latest` comes from busybox-static; `swarmpy/nginx:latest` and
`swarmpy/redis:latest` from the recipes in `swarmpy.lab.recipes`: a root with
the binaries and the libraries `ldd` names for them, put in an image by
`docker import`. No registry is reachable from the lab, so images travel as
`docker save` archives.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

from swarmpy.lab.recipes import RECIPES, ImageRecipe
from swarmpy.lab.shell import LabError, on_each, output, run
from swarmpy.lab.state import Lab

BUSYBOX_IMAGE = "swarmpy/busybox:latest"
BUSYBOX = "/bin/busybox"  # Debian's busybox-static: no libraries to copy
_EMPTY_DIRS = ("tmp", "www", "etc", "proc", "sys", "dev", "root")
PRESETS = {"busybox": BUSYBOX_IMAGE, **{name: recipe.tag for name, recipe in RECIPES.items()}}


def has_image(image: str) -> bool:
    return run(["docker", "image", "inspect", image], check=False).returncode == 0


def build_image(tag: str = BUSYBOX_IMAGE, force: bool = False) -> bool:
    """Build the busybox image on this machine's engine; False when it was there already."""
    if not force and has_image(tag):
        return False
    if not os.path.exists(BUSYBOX):
        raise LabError(f"{BUSYBOX} is missing: apt-get install busybox-static")
    with tempfile.TemporaryDirectory(prefix="swarmpy-busybox-") as tmp:
        root = os.path.join(tmp, "root")
        os.makedirs(os.path.join(root, "bin"))
        for name in _EMPTY_DIRS:
            os.makedirs(os.path.join(root, name))
        run(["cp", BUSYBOX, os.path.join(root, "bin", "busybox")])
        for applet in output([BUSYBOX, "--list-full"]).split():
            if os.path.basename(applet) == "busybox":
                continue  # a link named busybox would point at itself
            link = os.path.join(root, applet)
            os.makedirs(os.path.dirname(link), exist_ok=True)
            if not os.path.lexists(link):
                os.symlink("/bin/busybox", link)
        _import(root, tag, ["ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin", 'CMD ["sh"]'])  # about 2 MB
    return True


def build_preset(name: str, force: bool = False) -> bool:
    """Build one of PRESETS by name; False when the engine had it already."""
    if name == "busybox":
        return build_image(force=force)
    if name not in RECIPES:
        raise LabError(f"no image preset {name!r} (presets: {', '.join(PRESETS)})")
    return build_recipe(RECIPES[name], force=force)


def build_recipe(recipe: ImageRecipe, force: bool = False) -> bool:
    """Build a recipe's image on this machine's engine; False when it was there already."""
    if not force and has_image(recipe.tag):
        return False
    missing = [path for path in recipe.binaries if not os.path.exists(path)]
    if missing:
        raise LabError(f"{', '.join(missing)} is missing: apt-get install -y {recipe.package}")
    with tempfile.TemporaryDirectory(prefix="swarmpy-image-") as tmp:
        root = os.path.join(tmp, "root")
        make_root(recipe, root)
        changes = [f"ENV {key}={json.dumps(value)}" for key, value in recipe.env.items()]
        changes.append(f"CMD {json.dumps(list(recipe.command))}")
        if recipe.user:
            changes.append(f"USER {recipe.user}")
        _import(root, recipe.tag, changes)
    return True


def make_root(recipe: ImageRecipe, root: str) -> None:
    """The image's whole file tree under `root` (which must not exist yet)."""
    os.makedirs(root)
    for binary in recipe.binaries:
        for path in (binary, *libraries_of(binary)):
            target = root + path
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(os.path.realpath(path), target)  # the file itself, never a symlink into the host's tree
    texts = {"/etc/passwd": recipe.passwd(), "/etc/group": recipe.groups()}
    files = {path: "".join(f"{line}\n" for line in lines) for path, lines in texts.items()}
    for path, text in {**files, **recipe.files}.items():
        os.makedirs(os.path.dirname(root + path), exist_ok=True)
        with open(root + path, "w") as f:
            f.write(text)
    os.makedirs(root + "/tmp")
    os.chmod(root + "/tmp", 0o1777)  # nginx's temp files, and anything else that needs to write
    for path, owner in recipe.dirs.items():
        os.makedirs(root + path, exist_ok=True)
        os.chown(root + path, *recipe.uid_gid(owner))


def libraries_of(binary: str) -> list[str]:
    """The libraries and dynamic loader `ldd` names for a binary; none for a static one."""
    done = run(["ldd", binary], check=False)
    text = done.stdout.decode(errors="replace")
    if done.returncode != 0:
        if "not a dynamic executable" in text + done.stderr.decode(errors="replace"):
            return []
        raise LabError(f"ldd {binary} failed: {done.stderr.decode(errors='replace').strip()}")
    return parse_ldd(text)


def parse_ldd(text: str) -> list[str]:
    """Absolute paths from `ldd` output, in order and once each; the vDSO has none and is skipped."""
    paths = []
    for line in text.splitlines():
        name, arrow, found = line.strip().partition("=>")
        if found.strip() == "not found":
            raise LabError(f"{name.strip()} is not on this machine: the binary cannot run")
        path = (found if arrow else name).split("(")[0].strip()
        if path.startswith("/"):
            paths.append(path)
    return list(dict.fromkeys(paths))


def _import(root: str, tag: str, changes: list[str]) -> None:
    """`tar | docker import` with Dockerfile-style changes (ENV, CMD, USER)."""
    archive = run(["tar", "--numeric-owner", "-C", root, "-c", "."]).stdout
    flags = [arg for change in changes for arg in ("-c", change)]
    run(["docker", "import", *flags, "-", tag], input=archive, timeout=300)


def image_size(tag: str) -> int:
    """The image's size in bytes, as `docker images` counts it."""
    return int(output(["docker", "image", "inspect", "-f", "{{.Size}}", tag]).strip())


def check_present(images: list[str]) -> None:
    missing = [image for image in images if not has_image(image)]
    if missing:
        raise LabError(f"not on this machine's engine: {', '.join(missing)} (docker pull or build it first)")


def load_images(lab: Lab, images: list[str], progress=None) -> None:
    """`docker save` once from this machine's engine, `docker load` into all nodes at once."""
    check_present(images)
    archive = os.path.join(lab.dir, "images.tar")
    try:
        run(["docker", "save", "-o", archive, *images], timeout=600)

        def load(node):
            run(["docker", "-H", node.docker_host, "load", "-q", "-i", archive], timeout=600)
            if progress:
                progress(f"{node.name}: loaded {', '.join(images)}")

        on_each(load, lab.nodes)
    finally:
        if os.path.exists(archive):
            os.remove(archive)
