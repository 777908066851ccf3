from customer_svc.bootstrap import main

main()
