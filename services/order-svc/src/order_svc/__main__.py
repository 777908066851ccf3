from order_svc.bootstrap import main

main()
