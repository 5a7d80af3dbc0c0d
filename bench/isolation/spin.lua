wrk.method = "POST"
wrk.body = "20"
