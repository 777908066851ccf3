from inventory_svc.bootstrap import main

main()
