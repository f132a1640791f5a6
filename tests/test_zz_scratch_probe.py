import pytest
from tests.pages.conftest import simulated_app
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

@pytest.fixture
async def app(settings):
    async with simulated_app(settings) as built:
        yield built

async def test_probe(app):
    runtime, new_user = app
    u = new_user()
    c = u.http_client
    r = await c.post("/auth/sign-up", data={"username": "x", "display_name": "", "password": "short"})
    print(r.status_code, r.headers)
    r2 = await c.get(r.headers["location"])
    print(r2.status_code)
    open("/tmp/scratch/page.html", "w").write(r2.text)
    r3 = await c.get("/healthz")
    print(r3.status_code, r3.text)
    r4 = await c.get("/rooms/1")
    print(r4.status_code, r4.headers)
