"""The dashboard (/ui/) in a real browser on the lab: headless Chromium (Debian's `chromium` and
`chromium-driver`) driven by Selenium. It logs in, sees every node and the tasks each runs, scales
a service and drains a node from the page and sees the cards follow, without a reload.

Chromium trusts the cluster's CA as a user would make it: the CA is added to the NSS database of a
home of the test's own (`certutil`), no certificate error is ignored. The screenshots are kept in
<pytest's base temp dir>/dashboard/ (the path is printed).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from swarmpy.settings import StateDir
from tests.integration.cluster import wait_for
from tests.integration.test_api import api

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

CHROMEDRIVER = "/usr/bin/chromedriver"  # Debian's: selenium-manager is never asked to download one
CHROMIUM = "/usr/bin/chromium"
NODES = ("node1", "node2", "node3")
PORT = 18477
STACK = f"""
services:
  app:
    image: swarmpy/busybox:latest
    command: ["sh", "-c", "mkdir -p /www; echo hello > /www/index.html; echo serving; exec httpd -f -p 80 -h /www"]
    ports: ["{PORT}:80"]
    stop_grace_period: 1s
    deploy:
      replicas: 2
      resources: {{reservations: {{cpus: "0.1", memory: 16M}}}}
"""
SERVICE = "ui_app"


@pytest.fixture(scope="module")
def browser(cluster, tmp_path_factory):
    for tool in (CHROMEDRIVER, CHROMIUM, "certutil"):
        if not shutil.which(tool):
            pytest.skip(f"the browser test needs {tool} (apt-get install chromium chromium-driver libnss3-tools)")
    home = tmp_path_factory.mktemp("chromium-home")
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{nssdb}", "--empty-password"], check=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{nssdb}", "-n", "swarmpy cluster CA", "-t", "C,,",
                    "-i", str(StateDir(cluster.state_dir).ca_file)], check=True)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                f"--user-data-dir={home / 'profile'}", "--no-first-run"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the page's console, for a failure
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER, env={**os.environ, "HOME": str(home)})
    driver = webdriver.Chrome(service=service, options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    path = tmp_path_factory.getbasetemp() / "dashboard"
    path.mkdir(exist_ok=True)
    print(f"\ndashboard screenshots: {path}")
    return path


@pytest.fixture(scope="module")
def stack(cluster, tmp_path_factory):
    cluster.deploy(cluster.write_stack(tmp_path_factory.mktemp("ui"), STACK), "ui")
    wait_for(lambda: sum(cluster.running("ui", "app").values()) == 2, 60, what="2 tasks of ui_app running")
    try:
        yield SERVICE
    finally:
        for node in NODES:
            cluster.cli("node", "update", "--availability", "active", node, check=False)
        cluster.cli("stack", "rm", "ui", check=False)


def cards(driver, service: str | None = None, state: str | None = None) -> dict[str, int]:
    """Task cards per node, as the page shows them now."""
    selector = ".task" + (f'[data-service="{service}"]' if service else "") + (f'[data-state="{state}"]' if state else "")
    return driver.execute_script(
        "const out = {}; document.querySelectorAll('.node').forEach(n => "
        "{ out[n.dataset.node] = n.querySelectorAll(arguments[0]).length; }); return out;", selector)


def live_tasks(cluster) -> dict[str, int]:
    """The tasks the API says each node holds (not ended), by node name."""
    base, s = api(cluster)
    nodes = {n["id"]: n["hostname"] for n in s.get(base + "/nodes", timeout=10).json()}
    out = dict.fromkeys(nodes.values(), 0)
    for t in s.get(base + "/tasks", timeout=10).json():
        if t["node_id"] and t["state"] in ("new", "pending", "assigned", "preparing", "starting", "running"):
            out[nodes[t["node_id"]]] += 1
    return out


def said(driver) -> str:
    """What the page told the user, and its console: for a failure's message."""
    return f"message {driver.find_element(By.ID, 'message').text!r}, console {driver.get_log('browser')}"


def retrying(action, attempts: int = 5):
    """A fragment may be replaced between finding an element and using it: find it again."""
    for attempt in range(attempts):
        try:
            return action()
        except StaleElementReferenceException:
            if attempt == attempts - 1:
                raise


def test_the_dashboard_in_a_browser(cluster, stack, browser, artifacts):
    base, session = api(cluster)
    token = StateDir(cluster.state_dir).token()
    d = browser

    # the login page: a wrong token is refused, the cluster's is let in
    d.get(base + "/ui/")
    assert d.current_url.endswith("/ui/login"), \
        f"at {d.current_url}: title {d.title!r}, page {d.page_source[:500]!r}, console {d.get_log('browser')}"
    d.find_element(By.ID, "token").send_keys("not-the-token", Keys.ENTER)
    assert "not the cluster" in wait_for(lambda: d.find_elements(By.ID, "login-error"), 10)[0].text
    d.find_element(By.ID, "token").send_keys(token, Keys.ENTER)
    wait_for(lambda: d.find_elements(By.CSS_SELECTOR, ".grid .node"), 15, what="the node grid")
    cookie = d.get_cookie("swarmpy_ui")
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    wait_for(lambda: d.find_element(By.ID, "live").text == "live", 15,
             what=lambda: f"the event stream to open: the page says {d.find_element(By.ID, 'live').text!r}, {said(d)}")
    loaded_at = d.execute_script("return window.swarmpyLoadedAt")

    # every node, each with as many cards as the API and the engines say it has tasks
    names = {n["hostname"] for n in cluster.json("node", "ls")}
    assert set(cards(d)) == names
    wait_for(lambda: cards(d) == live_tasks(cluster), 20, what=lambda: f"cards {cards(d)} == tasks {live_tasks(cluster)}")
    engines = cluster.running("ui", "app")
    assert {n: c for n, c in cards(d, SERVICE, "running").items() if n in NODES} == engines
    node1 = retrying(lambda: d.find_element(By.CSS_SELECTOR, '.node[data-node="node1"]').text)
    assert "worker" in node1 and "zone=a" in node1 and "reserved" in node1
    d.save_screenshot(str(artifacts / "1-logged-in.png"))

    # scale from the page: the new cards come without a reload
    def scale_to(n):
        row = d.find_element(By.CSS_SELECTOR, f'tr[data-service="{SERVICE}"] input[name="replicas"]')
        row.clear()
        row.send_keys(str(n), Keys.ENTER)
    retrying(lambda: scale_to(4))
    wait_for(lambda: sum(cards(d, SERVICE, "running").values()) == 4, 60,
             what=lambda: f"4 running cards of {SERVICE} (now {cards(d, SERVICE)}; {said(d)})")
    assert sum(cluster.running("ui", "app").values()) == 4
    assert d.execute_script("return window.swarmpyLoadedAt") == loaded_at  # the same page, updated in place
    assert d.execute_script("return window.swarmpyRefreshes") > 0
    wait_for(lambda: "4/4" in d.find_element(By.CSS_SELECTOR, f'tr[data-service="{SERVICE}"]').text, 20,
             what="the services table to say 4/4")
    d.save_screenshot(str(artifacts / "2-scaled.png"))

    # drain a node from the page: its cards move to the others
    busy = max(NODES, key=lambda n: cards(d, SERVICE, "running")[n])
    retrying(lambda: Select(d.find_element(By.CSS_SELECTOR, f'.node[data-node="{busy}"] select.availability'))
             .select_by_value("drain"))
    wait_for(lambda: cards(d, SERVICE)[busy] == 0 and sum(cards(d, SERVICE, "running").values()) == 4, 60,
             what=lambda: f"{busy}'s cards to move (now {cards(d, SERVICE)}; {said(d)})")
    assert cluster.running("ui", "app")[busy] == 0
    drained = next(n for n in cluster.json("node", "ls") if n["hostname"] == busy)
    assert drained["availability"] == "drain"
    assert d.execute_script("return window.swarmpyLoadedAt") == loaded_at
    d.save_screenshot(str(artifacts / "3-drained.png"))

    # a service's page: its tasks and their history, its mesh table, its logs
    d.find_element(By.CSS_SELECTOR, f'tr[data-service="{SERVICE}"] a').click()
    wait_for(lambda: d.find_elements(By.CSS_SELECTOR, "table.tasks-history"), 15, what="the service's page")
    assert d.find_element(By.TAG_NAME, "h1").text == SERVICE
    history = d.find_element(By.CSS_SELECTOR, "table.tasks-history").text
    assert history.count("shutdown") >= 1  # the tasks the drain moved are its history
    wait_for(lambda: d.find_element(By.ID, "logs").text != "…", 30, what="the logs to load")
    assert "serving" in d.find_element(By.ID, "logs").text
    assert f"{PORT}" in d.find_element(By.CSS_SELECTOR, "section.ports").text

    balancers = len(session.get(base + "/lb", timeout=10).json())

    def mesh_up():  # the mesh reports its table every second, and no event says so: load the page again
        d.refresh()
        return d.find_element(By.CSS_SELECTOR, "table.mesh").text.count(" up ") == 4 * balancers
    wait_for(mesh_up, 30, interval=1,
             what=lambda: f"4 endpoints up per load balancer: {d.find_element(By.CSS_SELECTOR, 'table.mesh').text}")
    d.save_screenshot(str(artifacts / "4-service.png"))


def test_a_stack_token_is_refused(cluster, browser):
    base, s = api(cluster)
    made = s.post(base + "/tokens", json={"stack": "ui"}, timeout=10).json()
    try:
        browser.delete_all_cookies()
        browser.get(base + "/ui/login")
        browser.find_element(By.ID, "token").send_keys(made["token"], Keys.ENTER)
        assert "cluster token" in wait_for(lambda: browser.find_elements(By.ID, "login-error"), 10)[0].text
        assert browser.get_cookie("swarmpy_ui") is None
    finally:
        s.delete(base + f"/tokens/{made['id']}", timeout=10)
