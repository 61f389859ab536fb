"""Admins maintain the calendar over the API; everyone else may only read it."""


def test_admins_enter_days_and_others_may_not(as_user):
    admin, clerk = as_user("admin", None), as_user("clerk", "taxation")
    body = {"days": [{"date": "2027-01-01", "kind": "holiday", "name": "元旦"}]}
    r = clerk.post("/calendar/days", json=body)
    assert r.status_code == 403
    r = admin.post("/calendar/days", json=body)
    assert r.status_code == 200 and r.json == {"days": 1, "cases_rearmed": 0}
    [day] = clerk.get("/calendar/days?year=2027").json
    assert (day["date"], day["kind"], day["name"]) == ("2027-01-01", "holiday", "元旦")
    assert day["updated_by"].startswith("admin-")  # who entered it is kept


def test_csv_import_is_all_or_nothing(as_user):
    admin = as_user("admin", None)
    good = "date,kind,name\n2027-02-06,workday,春节调休\n2027-02-08,holiday,春节\n"
    r = admin.post("/calendar/import", data=good.encode("utf-8"), content_type="text/csv")
    assert r.status_code == 200 and r.json["days"] == 2
    bad = "2027-05-01,holiday,劳动节\n2027-05-32,holiday,x\nnot a line\n"
    r = admin.post("/calendar/import", data=bad.encode("utf-8"), content_type="text/csv")
    assert r.status_code == 422 and set(r.json["errors"]) == {"line 2", "line 3"}
    assert [d["date"] for d in admin.get("/calendar/days?year=2027").json] == ["2027-02-06", "2027-02-08"]


def test_bad_day_entries_name_the_field(as_user):
    r = as_user("admin", None).post("/calendar/days", json={"days": [{"date": "2027-02-30", "kind": "rest"}]})
    assert r.status_code == 422 and set(r.json["errors"]) == {"days.0.date", "days.0.kind"}
